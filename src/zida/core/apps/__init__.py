"""Apps, forms and their versioned component schemas."""
