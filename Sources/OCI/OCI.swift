// The OCI layer; see DESIGN.md.
