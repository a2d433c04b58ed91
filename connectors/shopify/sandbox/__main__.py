"""``python -m connectors.shopify.sandbox`` (the same as ``runner sandbox shopify``)."""

from connectors.shopify.sandbox import sandbox_command

if __name__ == "__main__":
    sandbox_command()
