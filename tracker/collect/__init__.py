"""Collection: parse AWS records into plain records (``parse``, pure), collect every source
and region incrementally (``service``), and recost stored jobs (``recost``)."""
