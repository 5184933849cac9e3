"""OCPP 1.6J: the charger's back-office side (charge point, authorisation, transactions,
smart charging). Pure cores here take `now` and return decisions; the websocket shell
(agent.ocpp.chargepoint) feeds them."""
