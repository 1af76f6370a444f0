"""`fer-tf models`: list the registered models."""



def run(args):
    from fer_tf import models
    for name in models.names():
        spec = models.get(name)
        print(f"{name:10s} {'x'.join(map(str, spec.image_size)):10s} "
              f"{spec.label_set or '(from data)':12s} {spec.description}")


def add_parser(sub, parents):
    p = sub.add_parser("models", help="list the registered models")
    p.set_defaults(func=run)
