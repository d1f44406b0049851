"""optimo_analytics: the project's analytics events, tracked with relay."""
