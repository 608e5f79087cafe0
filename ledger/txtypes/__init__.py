"""Built-in transaction types; importing this package registers them."""
from ledger.txtypes import providers, tasks, transfer  # noqa: F401
from ledger.txtypes import fml  # noqa: F401,E402
