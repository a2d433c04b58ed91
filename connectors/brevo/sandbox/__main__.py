"""Run the Brevo sandbox: ``python -m connectors.brevo.sandbox --lists 40,41,42``."""

from connectors.brevo.sandbox import main

main()
