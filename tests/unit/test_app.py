import faust

from pipeline.app import table_items_after


def test_memory_table_items_come_in_key_order_after_the_given_key():
    # The RocksDB store's seek runs in tests/integration/test_dedup_sweep.py (a real worker).
    app = faust.App("unit-table-items", store="memory://")
    table = app.Table("dedup", default=None, partitions=1, key_type=str)
    table.data.data.update({"b2": {"t": 2}, "a1": {"t": 1}, "c3": {"t": 3}})
    assert list(table_items_after(table, None)) == [
        ("a1", {"t": 1}),
        ("b2", {"t": 2}),
        ("c3", {"t": 3}),
    ]
    assert [key for key, _ in table_items_after(table, "a1")] == ["b2", "c3"]
    assert [key for key, _ in table_items_after(table, "b")] == ["b2", "c3"]  # a key deleted since
