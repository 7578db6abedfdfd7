"""Recommendation: interaction tables, splits per user, negative sampling, ranking metrics.

A recommender is an ordinary config with `model.arch` mf, ncf or two_tower and a
`recommend:` section naming the user / item / rating / timestamp columns; `megalith train`
sends it through `megalith.recommend.train`.
"""
