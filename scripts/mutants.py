#!/usr/bin/env python3
"""Mutation testing of HotStuff's safety rules against the simulation suite.

Each mutation below removes or weakens one rule of the engine (`consensus-hotstuff/src/engine/`: the
vote rule, the commit rule, certificate checks, persist-before-send). For each, this script
applies it, builds, and runs the simulation tests one at a time, fastest first, until one
fails (the mutation is caught) or all pass (missed). The file is restored after every
mutation, also on Ctrl-C. A snippet that no longer matches the source fails the script: keep
the list in step with the engine.

    scripts/mutants                 # every mutation (about 5-10 minutes each on 2 cores)
    scripts/mutants vote-tc timeout # mutations whose name contains any of these

Prints one line per mutation and a summary; exits non-zero if any mutation was missed.
`cargo mutants` (generated mutations) is the broader measure; this list is the named rules
the suite must always catch.
"""

import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = os.path.join(ROOT, "consensus-hotstuff/src/engine")

# (name, what it breaks, file under consensus-hotstuff/src/engine/, exact snippet, replacement)
MUTATIONS = [
    (
        "vote-tc-rule",
        "vote rule: a TC-justified proposal need not extend the highest QC the TC reports",
        "safety.rs",
        "tc.round.checked_add(1) == Some(round) && qc_round >= tc.max_high_qc_round());",
        "tc.round.checked_add(1) == Some(round));",
    ),
    (
        "vote-round-rule",
        "vote rule: may vote again in a round it voted or timed out in",
        "safety.rs",
        "if round <= self.state.highest_vote_round.max(qc_round) {",
        "if round < self.state.highest_vote_round.max(qc_round) {",
    ),
    (
        "commit-consecutive",
        "commit rule: a certified child in any later round decides its parent",
        "commit_rule.rs",
        "if p.proposal.header.round.saturating_add(1) != c.proposal.header.round || p.proposal.header.round <= tree.committed.round {",
        "if p.proposal.header.round <= tree.committed.round {",
    ),
    (
        "parent-not-certified",
        "a proposal's parent need not be the block its justify QC certifies",
        "voter.rs",
        "if h.parent != p.justify.block || h.election.len() != PROOF_LEN",
        "if h.election.len() != PROOF_LEN",
    ),
    (
        "justify-unverified",
        "a proposal's justify QC is not verified",
        "voter.rs",
        "if !self.verifier.qc(&p.justify, genesis) || p.timeout.as_ref().is_some_and(|tc| !self.verifier.tc(tc)) {",
        "if p.timeout.as_ref().is_some_and(|tc| !self.verifier.tc(tc)) {",
    ),
    (
        "proposal-tc-unverified",
        "a proposal's TC is not verified",
        "voter.rs",
        "if !self.verifier.qc(&p.justify, genesis) || p.timeout.as_ref().is_some_and(|tc| !self.verifier.tc(tc)) {",
        "if !self.verifier.qc(&p.justify, genesis) {",
    ),
    (
        "timeout-qc-unverified",
        "a timeout's high QC is not verified",
        "certificates.rs",
        "            if !self.verifier.qc(&t.high_qc, genesis) {\n                return;\n            }\n",
        "",
    ),
    (
        "timeout-persist-after-send",
        "a timeout is broadcast before the safety state is persisted",
        "rounds.rs",
        "        self.persist_with(tip, out);\n        self.pacemaker.gave_up(timeout.clone());\n        out.push(Output::Broadcast { bytes: codec::encode(&Message::Timeout(Box::new(timeout.clone()))) });\n",
        "        self.pacemaker.gave_up(timeout.clone());\n        out.push(Output::Broadcast { bytes: codec::encode(&Message::Timeout(Box::new(timeout.clone()))) });\n        self.persist_with(tip, out);\n",
    ),
    (
        "timeout-keeps-vote-round",
        "timing out does not raise the highest voted round (may vote after timing out)",
        "safety.rs",
        "        self.state.highest_vote_round = self.state.highest_vote_round.max(round);\n",
        "",
    ),
    (
        "vote-persist-after-send",
        "a vote is sent before the safety state is persisted",
        "voter.rs",
        "            self.persist_with(digest, out);\n            self.deliver_vote(vote, now, out);\n",
        "            self.deliver_vote(vote, now, out);\n            self.persist_with(digest, out);\n",
    ),
    (
        "proposal-persist-after-send",
        "a proposal is broadcast before the safety state is persisted",
        "proposer.rs",
        "        self.persist_with(digest, out);\n        #[cfg(feature = \"mocks\")]\n        if let Some(to) = self.withheld_from_all_but().filter(|_| !after_timeout) {",
        "        out.push(Output::Broadcast { bytes: bytes.clone() });\n        self.persist_with(digest, out);\n        #[cfg(feature = \"mocks\")]\n        if let Some(to) = self.withheld_from_all_but().filter(|_| !after_timeout) {",
    ),
]

# Fastest first: each runs alone, and the first failure ends the mutation's run.
TESTS = [
    "attackers_never_break_agreement_and_every_commit_stays_proven",
    "every_commit_carries_a_certificate_other_nodes_accept",
    "an_equivocating_leader_and_double_voter_is_caught_and_never_forks",
    "twins_enumerated_plans_never_fork_and_recover",
    "passes_the_consensus_conformance_suite",
]


def run(cmd, **kw):
    # Its own process group, so that an interrupted run takes cargo's test binary down too.
    with subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
        try:
            out, err = p.communicate()
        except BaseException:
            os.killpg(p.pid, signal.SIGKILL)
            raise
        return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def interrupted(*_):
    raise KeyboardInterrupt


def main():
    # Restore the mutated file on SIGTERM too (and on SIGINT where a background shell ignores it).
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    only = sys.argv[1:]
    originals = {file: open(os.path.join(ENGINE, file)).read() for _, _, file, _, _ in MUTATIONS}
    for name, _, file, old, _ in MUTATIONS:
        if originals[file].count(old) != 1:
            sys.exit(f"mutation {name}: its snippet matches {originals[file].count(old)} times in {file} (keep scripts/mutants.py in step)")
    results = []
    mutated = None
    try:
        for name, what, file, old, new in MUTATIONS:
            if only and not any(o in name for o in only):
                continue
            started = time.time()
            mutated = file
            with open(os.path.join(ENGINE, file), "w") as f:
                f.write(originals[file].replace(old, new))
            build = run(["cargo", "test", "--workspace", "--locked", "--test", "simulation", "--no-run"])
            caught_by = None
            for test in TESTS if build.returncode == 0 else []:
                r = run(
                    ["cargo", "test", "--workspace", "--locked", "--test", "simulation", "--", "--exact", test],
                )
                if r.returncode != 0:
                    lines = (r.stdout + r.stderr).splitlines()
                    at = next((i for i, l in enumerate(lines) if "panicked at" in l), None)
                    why = lines[at + 1].strip() if at is not None and at + 1 < len(lines) else "(no panic message)"
                    caught_by = f"{test}: {why[:300]}"
                    break
            if build.returncode != 0:
                print(f"{name}: the mutant does not build\n{build.stderr[-2000:]}", flush=True)
            verdict = "caught" if caught_by else "MISSED" if build.returncode == 0 else "build failed"
            results.append((name, verdict, what, caught_by or ""))
            print(f"{name}: {verdict} {('by ' + caught_by) if caught_by else ''} ({time.time() - started:.0f} s)", flush=True)
            with open(os.path.join(ENGINE, file), "w") as f:
                f.write(originals[file])
            mutated = None
    finally:
        if mutated is not None:
            with open(os.path.join(ENGINE, mutated), "w") as f:
                f.write(originals[mutated])
    print("\nmutation | breaks | verdict | first test to fail")
    for name, verdict, what, test in results:
        print(f"{name} | {what} | {verdict} | {test}")
    missed = [r for r in results if r[1] != "caught"]
    print(f"\n{len(results)} mutants, {len(results) - len(missed)} caught, {len(missed)} missed")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
