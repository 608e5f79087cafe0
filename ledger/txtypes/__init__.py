"""Built-in transaction types; importing this package registers them."""
from pocnet.ledger.txtypes import providers, tasks, transfer  # noqa: F401
from pocnet.ledger.txtypes import fml  # noqa: F401,E402
from pocnet.ledger.txtypes import market  # noqa: F401,E402
from pocnet.ledger.txtypes import accountability  # noqa: F401,E402
from pocnet.ledger.txtypes import validators  # noqa: F401,E402
