"""neuron-consumer: pull, verify, unseal, ballot-proof, verify-ballot, thumbprint.

Every failure is one line on stderr and a non-zero exit (3: something did not verify,
4: the hub refused, 5: the hub is unavailable, 1: anything else you can fix), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from neuron_consumer.errors import ConsumerError


def _pins(values: list[str] | None) -> set[str]:
    pins = set(values or [])
    env = os.environ.get("NEURON_HUB_PINS", "")
    pins |= {p.strip() for p in env.split(",") if p.strip()}
    return pins


def _pull(args: argparse.Namespace) -> int:
    from neuron_consumer.client import Hub
    from neuron_consumer.keys import load_signing_key
    from neuron_consumer.pull import pull

    key = load_signing_key(args.private_key)
    with Hub(args.hub, args.key_id, key, _pins(args.pin), consumer=args.consumer, ca=args.ca) as hub:
        for feed in args.feeds:
            result = pull(hub, feed, args.out)
            count, where = len(result.partitions), args.out / feed
            print(f"{feed}: {count} partition version(s), {result.rows} rows verified, under {where}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from neuron_consumer.verify import verify_folder

    failed = 0
    for feed in args.feeds:
        problems = verify_folder(args.out, feed, _pins(args.pin))
        for problem in problems:
            print(f"NOT VERIFIED {feed}: {problem}", file=sys.stderr)
        if problems:
            failed += 1
        else:
            print(f"{feed}: every partition verifies against its signed manifest")
    return 3 if failed else 0


def _unseal(args: argparse.Namespace) -> int:
    from neuron_consumer.keys import load_sealing_key
    from neuron_consumer.unseal import unseal, unseal_folder

    key = load_sealing_key(args.key)
    if args.value:
        if not (args.consumer and args.field):
            raise ConsumerError("to open single values, give --consumer and --field (and --feed)")
        for token in args.value:
            print(unseal(token, key, args.consumer, args.feed, args.field))
        return 0
    if args.to is None:
        raise ConsumerError("give --to DIR (where the opened copy is written) or values with --value")
    files, columns = unseal_folder(args.out, args.feed, key, args.to)
    print(f"{args.feed}: {files} file(s) written under {args.to}, opened: {', '.join(columns) or 'no sealed column'}")
    return 0


def _verify_ballot(args: argparse.Namespace) -> int:
    from neuron_consumer.ballot import verify_ballot

    try:
        proof = json.loads(args.proof.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConsumerError(f"cannot read {args.proof}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConsumerError(f"{args.proof} is not JSON (save the hub's proof answer as it is)") from exc
    if not isinstance(proof, dict) or not verify_ballot(proof, args.receipt, args.choice, args.area, args.root):
        print("NOT VERIFIED: this proof does not show that ballot under that root", file=sys.stderr)
        return 3
    print(f"verified: your ballot on {proof['motion_id']} is under root {proof['merkle_root']}")
    return 0


def _ballot_proof(args: argparse.Namespace) -> int:
    from neuron_consumer.client import Hub
    from neuron_consumer.keys import load_signing_key

    key = load_signing_key(args.private_key)
    with Hub(args.hub, args.key_id, key, _pins(args.pin), consumer=args.consumer, ca=args.ca) as hub:
        proof = hub.ballot_proof(args.receipt)  # signed by the hub; still checked offline by verify-ballot
    print(json.dumps(proof, ensure_ascii=False, indent=1))
    return 0


def _thumbprint(args: argparse.Namespace) -> int:
    from neuron_consumer.keys import thumbprint

    try:
        jwks = json.loads(args.jwks.read_text())
        for jwk in jwks["keys"]:
            print(f"{jwk.get('kid')}\t{thumbprint(jwk)}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConsumerError(f"{args.jwks} is not a JWKS with OKP keys") from exc
    return 0


CA_HELP = "the hub's TLS certificate (hub.crt from its operator); default: the system's CAs"
PIN_HELP = "RFC 7638 thumbprint of a hub key to trust (repeat; or NEURON_HUB_PINS=a,b)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neuron-consumer", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    pull = sub.add_parser("pull", help="pull feeds incrementally, every response and manifest verified")
    pull.add_argument("feeds", nargs="+", metavar="FEED")
    pull.add_argument("--hub", required=True, help="the hub's base URL, e.g. https://hub.example:8700")
    pull.add_argument("--key-id", required=True, help="your key id, as the hub registered it")
    pull.add_argument("--private-key", type=Path, required=True, help="your Ed25519 private key (PEM)")
    pull.add_argument("--pin", action="append", metavar="THUMBPRINT", help=PIN_HELP)
    pull.add_argument("--consumer", help="the policy name your key was registered under (default: from the key id)")
    pull.add_argument("--out", type=Path, default=Path("pulled"), help="the folder (default: pulled)")
    pull.add_argument("--ca", type=Path, help=CA_HELP)
    pull.set_defaults(run=_pull)

    verify = sub.add_parser("verify", help="check a pulled folder against its signed manifests (offline)")
    verify.add_argument("feeds", nargs="+", metavar="FEED")
    verify.add_argument("--out", type=Path, default=Path("pulled"))
    verify.add_argument("--pin", action="append", metavar="THUMBPRINT", help=PIN_HELP)
    verify.set_defaults(run=_verify)

    unseal = sub.add_parser("unseal", help="open the fields sealed to you with your X25519 private key")
    unseal.add_argument("--key", type=Path, required=True, help="your X25519 private key (PEM)")
    unseal.add_argument("--feed", required=True)
    unseal.add_argument("--out", type=Path, default=Path("pulled"), help="the pulled folder")
    unseal.add_argument("--to", type=Path, help="where to write the opened copy of the feed's dataset")
    unseal.add_argument("--value", action="append", help="open this sealed value instead (repeat)")
    unseal.add_argument("--consumer", help="with --value: the consumer it was sealed to")
    unseal.add_argument("--field", help="with --value: the field it is a value of")
    unseal.set_defaults(run=_unseal)

    ballot = sub.add_parser("verify-ballot", help="check offline that your ballot counted as cast")
    ballot.add_argument("proof", type=Path, help="the proof JSON (GET /v1/feeds/governance.votes/proof)")
    ballot.add_argument("--receipt", required=True)
    ballot.add_argument("--choice", required=True, help="agree, oppose or abstain")
    ballot.add_argument("--area", type=float, required=True, help="your floor area counted for the vote (m²)")
    ballot.add_argument("--root", help="the motion's merkle_root from the published feed")
    ballot.set_defaults(run=_verify_ballot)

    fetch = sub.add_parser("ballot-proof", help="fetch the inclusion proof of a ballot receipt (prints JSON)")
    fetch.add_argument("receipt")
    fetch.add_argument("--hub", required=True)
    fetch.add_argument("--key-id", required=True)
    fetch.add_argument("--private-key", type=Path, required=True)
    fetch.add_argument("--pin", action="append", metavar="THUMBPRINT", help=PIN_HELP)
    fetch.add_argument("--consumer")
    fetch.add_argument("--ca", type=Path, help=CA_HELP)
    fetch.set_defaults(run=_ballot_proof)

    thumb = sub.add_parser(
        "thumbprint", help="the RFC 7638 thumbprints of a JWKS file's keys (to compare with the hub's letter)"
    )
    thumb.add_argument("jwks", type=Path)
    thumb.set_defaults(run=_thumbprint)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ConsumerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
