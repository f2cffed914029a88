"""Per-sample materialisation: search, select, composite every modality of one tile."""
