"""The daemon's adapters: kokorod's own WebSocket protocol, the OpenAI HTTP
API and Wyoming. Each takes the core's ``FrontDoor``
(kokorod.daemon.front_door) at construction and drives sessions through it;
the core never imports them (kokorod.app wires the two)."""
