"""Built-in transaction types; importing this package registers them."""
from ledger.txtypes import tasks, transfer  # noqa: F401
