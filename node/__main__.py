from pocnet.node.cli import app

app(prog_name="pocnet")
