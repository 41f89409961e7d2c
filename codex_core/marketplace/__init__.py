"""Plugin catalogs (``marketplace.json``) and installing Python plugins from them.

``catalog`` parses catalogs (Codex's ``marketplace.json`` shape, with Python package sources),
``install`` installs and uninstalls plugin distributions in the server's own interpreter
environment, and ``methods`` is the kernel plugin that answers ``plugin/*`` over the protocol.
It ships inside ``codex_core`` because ``codex-app-server plugin ...`` and the kernel's own
``plugin/*`` methods both need it in every installation, not only in a source checkout.
"""
