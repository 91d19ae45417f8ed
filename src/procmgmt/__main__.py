"""``python -m procmgmt``: the same CLI as the ``procmgmt`` console script."""

from procmgmt.cli.main import main

raise SystemExit(main())
