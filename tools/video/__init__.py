"""Video access: probing (``probe``), frame sources (``sources``) and sampling (``sampling``)."""
