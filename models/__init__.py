"""The trained models shipped with fer-tf, installed as the package data `fer_tf.shipped`
(setup.py maps this folder there); `fer_tf.analyzer.shipped_model(name)` finds them."""
