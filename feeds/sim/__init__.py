"""Demo incident simulator: drives the cockpit's feeds through their real protocols.

- `geo`: distances, bearings, polylines (pure)
- `motion`: speed profiles, legs, itineraries: where a vehicle is at sim time t (pure)
- `plume`: CO concentration downwind of the fire (pure)
- `actors`: the `Actor` protocol and `Vehicle` (pure)
- `scenario`: the Dortmund harbour warehouse fire; `Scenario.messages_at(t_s, now)` (pure)
- `client`: `run_sim(url, token, ...)` over the native telemetry WebSocket
- `lorawan`: weather stations and water gauges as The Things Stack v3 uplinks over MQTT
- `streets`: street-like random walks and errands of people on the move (pure)
- `responders`: twelve volunteer first responders: registry, positions, answers to alerts
- `alert_endpoint`: the HTTP endpoint where the cockpit's responder alerts arrive
- `__main__`: `python -m feeds.sim --url ... --token ...`
"""
