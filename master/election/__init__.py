"""The elected Master io7 (issue 13): Raft from PySyncObj decides who leads a group.

- `lease`: the leader lease, from committed probes (pure): the only right to issue Limits.
- `codec`: Raft messages on the wire, msgpack with a closed schema (never pickle).
- `raft`: PySyncObj's Raft node for one charger of a group, ticked by its owner.
"""
