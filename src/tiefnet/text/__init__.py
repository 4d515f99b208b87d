"""The text applications of chapter 4: the character-level language model (:mod:`tiefnet.text.charrnn`)."""
