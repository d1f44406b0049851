"""A small survey product using relay, in the shape of the seed's Django application."""
