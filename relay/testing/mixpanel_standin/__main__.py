"""``python -m relay.testing.mixpanel_standin --port 8765``: serve until SIGINT or SIGTERM."""

from relay.testing.mixpanel_standin._cli import main

raise SystemExit(main())
