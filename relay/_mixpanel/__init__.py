"""The one owner of Mixpanel: every request relay sends to Mixpanel goes out from here.

``http_deadline`` bounds every request as a whole; ``client`` sends outbox rows to ``/import``
(``encoding`` builds the bytes, ``answers`` reads Mixpanel's answers into per-row outcomes);
``profiles`` sends profile updates to ``/engage`` and ``/groups`` (``profile_answers`` reads
the spec's ``Received``); ``lexicon`` talks to the Lexicon Schemas API. Nothing outside this
package sends to Mixpanel. Below :mod:`relay._delivery` (which drives it) and above the store
and the event contract. Private.
"""
