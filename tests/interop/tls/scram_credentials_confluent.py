"""KIP-554 with confluent-kafka's AdminClient: a user created through
AlterUserScramCredentials (the client sends salt and salted password) is
listed by DescribeUserScramCredentials and logs in with SCRAM-SHA-256."""
import os

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from common import KAFKA, check, unique

admin = AdminClient({"bootstrap.servers": KAFKA})
user = unique("dave")
info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192)
futures = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(user, info, b"pa55word", os.urandom(16))])
for future in futures.values():
    future.result(30)

described = admin.describe_user_scram_credentials([user])
description = described[user].result(30)
mechanisms = [(c.mechanism, c.iterations) for c in description.scram_credential_infos]
check(mechanisms == [(ScramMechanism.SCRAM_SHA_256, 8192)], f"described {mechanisms}")

producer = Producer(
    {
        "bootstrap.servers": KAFKA,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": user,
        "sasl.password": "pa55word",
    }
)
producer.produce(unique("kip554"), b"made by AlterUserScramCredentials")
check(producer.flush(30) == 0, "the new user produced")

# Deleting the credential: the user no longer logs in with it.
for future in admin.alter_user_scram_credentials([UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_256)]).values():
    future.result(30)
try:
    admin.describe_user_scram_credentials([user])[user].result(30)
    raise AssertionError("a deleted credential is still described")
except KafkaException as error:
    check("RESOURCE_NOT_FOUND" in str(error) or "not found" in str(error).lower(), f"{error}")
print("AlterUserScramCredentials / DescribeUserScramCredentials ok")
