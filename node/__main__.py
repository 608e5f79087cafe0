from pocnet.node.cli import console_main

console_main()
