// The Sentry layer; see DESIGN.md.
