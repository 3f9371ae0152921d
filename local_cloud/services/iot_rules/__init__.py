"""AWS IoT topic rules run by the local cloud: moto stores them, this package runs them."""
