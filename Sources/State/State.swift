// The State layer; see DESIGN.md.
