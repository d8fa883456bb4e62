"""A PKCS#11 application scripted from stdin (python3-pykcs11, Debian's package), for the tests that need
one process to live through an event: the daemon killed mid-signature, the card pulled, another application
logged in. One command per line; one JSON line per answer on stdout.

  login PIN | logout | sign | slots | token | certs | wait-token SECONDS | quit
"""
import json
import sys
import time

import PyKCS11
from PyKCS11 import LowLevel

lib = PyKCS11.PyKCS11Lib()
lib.load(sys.argv[1])
session = None


def say(**answer):
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


def rv_name(error):
    return PyKCS11.CKR.get(error.value, hex(error.value))


def open_session():
    global session
    slot = lib.getSlotList(tokenPresent=True)[0]
    session = lib.openSession(slot)
    return session


def auth_key():
    return session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_LABEL, "CPS_AUT_CERT")])[0]


for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    command = words[0]
    try:
        if command == "quit":
            break
        if command == "slots":
            say(ok=True, slots=len(lib.getSlotList(tokenPresent=True)))
        elif command == "token":
            say(ok=True, label=lib.getTokenInfo(lib.getSlotList(tokenPresent=True)[0]).label.strip())
        elif command == "certs":
            # What a browser lists before asking for a PIN: the labels of the token's certificates.
            open_session()
            found = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_CERTIFICATE)])
            say(ok=True, certs=sorted(session.getAttributeValue(o, [PyKCS11.CKA_LABEL])[0] for o in found))
        elif command == "login":
            open_session().login(words[1])
            say(ok=True)
        elif command == "logout":
            session.logout()
            say(ok=True)
        elif command == "sign":
            if session is None:
                open_session()
            signature = session.sign(auth_key(), b"bonjour", PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS, None))
            say(ok=True, signature=bytes(signature).hex())
        elif command == "wait-token":
            until = time.time() + float(words[1])
            while time.time() < until:
                try:
                    if lib.getSlotList(tokenPresent=True):
                        break
                except PyKCS11.PyKCS11Error:
                    pass
                time.sleep(0.2)
            say(ok=True, slots=len(lib.getSlotList(tokenPresent=True)))
        else:
            say(ok=False, error="unknown command")
    except PyKCS11.PyKCS11Error as error:
        session = None if error.value in (PyKCS11.CKR_SESSION_HANDLE_INVALID, PyKCS11.CKR_DEVICE_REMOVED, PyKCS11.CKR_TOKEN_NOT_PRESENT, PyKCS11.CKR_DEVICE_ERROR, PyKCS11.CKR_SESSION_CLOSED) else session
        say(ok=False, error=rv_name(error))
    except IndexError:
        say(ok=False, error="no token or no key visible")
