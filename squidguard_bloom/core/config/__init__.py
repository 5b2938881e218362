"""squidGuard.conf: :func:`.loader.load_config` reads and checks one into a :class:`.model.Config`.

A face that imports nothing, so that importing one module of the package
(the model, say) does not load the parser with it.
"""
