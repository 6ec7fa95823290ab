// The Boot layer; see DESIGN.md.
