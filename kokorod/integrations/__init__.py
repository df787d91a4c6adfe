"""Adapters that plug kokorod into voice-agent frameworks.

Each framework lives in its own module and is imported only when asked for
(``from kokorod.integrations.pipecat import KokorodTTSService``), so importing
this package never pulls in pipecat or livekit.
"""
