"""The app: the product that keeps Brevo in step with BigCommerce stores, on top of the framework.

The framework (``framework``) runs any platform's connectors; the plugins (``connectors``)
are the platforms; this package pairs them: ``runner sync`` with the product page's config
(``tajo.yaml``), ``runner status``, ``runner check --config tajo.yaml``, ``runner webhooks``
and the forwarder that keeps the destination current from the webhook spool.
"""
