"""The emulators and Radicale as fixtures for the provider-level tests in this folder."""

from tests.emulators.fixtures import (  # noqa: F401  (fixtures)
    google,
    google_server,
    graph,
    graph_server,
    radicale_server,
    tls_files,
)
