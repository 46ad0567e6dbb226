"""pika with the EXTERNAL mechanism: the client certificate's CN is the
user (RabbitMQ's rabbit_auth_mechanism_ssl). Without a certificate EXTERNAL
is not offered; a certificate naming an unknown user is refused."""
import ssl
import sys

import pika
import pika.exceptions

from common import AMQP_TLS, CA_FILE, round_trip

known_cert, known_key, unknown_cert, unknown_key = sys.argv[1:5]
host, port = AMQP_TLS.removeprefix("amqps://").rsplit(":", 1)


def connect(cert=None, key=None):
    context = ssl.create_default_context(cafile=CA_FILE)
    if cert:
        context.load_cert_chain(cert, key)
    parameters = pika.ConnectionParameters(
        host=host,
        port=int(port),
        credentials=pika.credentials.ExternalCredentials(),
        ssl_options=pika.SSLOptions(context, host),
    )
    return pika.BlockingConnection(parameters)


round_trip(connect(known_cert, known_key), b"logged in by certificate", "external")

for cert, key, why in [(None, None, "no certificate: EXTERNAL not offered"), (unknown_cert, unknown_key, "unknown user")]:
    try:
        connect(cert, key).close()
    except (pika.exceptions.AuthenticationError, pika.exceptions.ProbableAccessDeniedError, pika.exceptions.ProbableAuthenticationError) as error:
        print(f"refused ({why}): {error!r}")
        continue
    raise AssertionError(f"logged in with EXTERNAL: {why}")
print("EXTERNAL ok")
