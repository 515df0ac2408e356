"""conda: the plugin (post-transaction action and health check), the link scripts
packages can ship, and the transaction model both share."""
