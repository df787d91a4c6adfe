"""Helpers shared by the tests: a real daemon process and a raw-protocol peer
(daemon), the recogniser and quality judges (asr), a fleet behind HAProxy
(fleet), a fake of the core's front door for the adapters' unit tests
(fake_door), and the fakes the session, client and browser tests drive. Test
modules import from here, never from each other. Modules here import each
other relatively, so they load as ``support.x`` (pytest puts tests/ on the
path) and as ``tests.support.x`` (scripts with only the repository root)."""
