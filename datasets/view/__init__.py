"""Views: pictures of a dataset, `draw` (boxes, masks, labels on the images) and the `stats --plot` figure,
with the drawing and matplotlib helpers the detection floor uses too.
"""
