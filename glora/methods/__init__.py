"""PEFT methods, one module each; :mod:`glora.methods.registry` maps names to them."""
