"""The daemon's core: the server and its sessions, the engine scheduler and
admission, utterances and their timelines. Front-ends (kokorod.frontends) are
thin adapters onto it."""
