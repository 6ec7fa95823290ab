// The Platform layer; see DESIGN.md.
