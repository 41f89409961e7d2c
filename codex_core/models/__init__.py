"""Models: the catalog clients pick from (``model/list``, ``methods``), the typed contract
between the core and model providers (``contract``), and ``sampling``, how the core asks."""
