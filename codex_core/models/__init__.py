"""The model catalog clients pick from (``model/list``)."""
