"""The service catalogue: constructors for common services, tested for real.

Each module holds constructors following :mod:`procmgmt.services._common`::

    from procmgmt.services.postgresql import postgresql

    def processes(settings):
        pg = postgresql(settings)
        return {"postgresql": Instance(pg(port=5432), port=5432)}
"""
