"""Plugin catalogs (``marketplace.json``) and installing Python plugins from them.

``catalog`` parses catalogs (Codex's ``marketplace.json`` shape, with Python package sources),
``sources`` adds, removes and upgrades the catalogs a server reads (``[marketplaces.NAME]``),
``install`` installs, upgrades and uninstalls plugin distributions in the server's own
interpreter environment, ``methods`` is the kernel plugin that answers ``plugin/*`` and
``marketplace/*`` over the protocol, and ``cli`` is ``codex-app-server plugin|marketplace``.
It ships inside ``codex_core`` because ``codex-app-server plugin ...`` and the kernel's own
``plugin/*`` methods both need it in every installation, not only in a source checkout.
"""
