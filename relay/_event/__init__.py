"""Step 1 of the flow, what an event is: the contract ``track()`` checks before any SQL.

``properties`` (the pydantic base every event schema extends), ``registry`` (event name ->
schema), ``naming``, ``limits`` (Mixpanel's documented limits, one place), ``pii`` (the
personal-data guard), ``identity`` (the distinct_id hierarchy) and ``location``. Private:
import the public names from :mod:`relay`.
"""
