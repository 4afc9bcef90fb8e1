import doctest
import threading

import numpy as np

import emotrt.runtime.ringbuffer
from emotrt.runtime.ringbuffer import RingBuffer


def test_docstring_example():
    assert doctest.testmod(emotrt.runtime.ringbuffer).failed == 0


def test_fifo_order_survives_wraparound():
    rb = RingBuffer(7)
    out = []
    data = np.arange(100, dtype=np.float32)
    for i in range(0, 100, 5):
        assert rb.write(data[i:i + 5]) == 0
        out.append(rb.read(3))
        out.append(rb.read(2))
    assert np.array_equal(np.concatenate(out), data) and rb.overruns == 0


def test_blocking_write_waits_for_the_reader_instead_of_dropping():
    rb = RingBuffer(10)
    rb.write(np.zeros(8, np.float32))
    done = threading.Event()

    def writer():
        rb.write(np.ones(6, np.float32), block=True)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert not done.wait(0.2), "must wait: only 2 free slots"
    assert rb.read(8).sum() == 0
    thread.join(5)
    assert done.is_set() and rb.read(6).sum() == 6 and rb.overruns == 0


def test_read_waits_until_enough_or_closed():
    rb = RingBuffer(10)
    assert rb.read(4, timeout=0.0) is None
    threading.Timer(0.1, rb.write, args=(np.ones(4, np.float32),)).start()
    assert rb.read(4, timeout=5).shape == (4,)
    rb.write(np.ones(2, np.float32))
    threading.Timer(0.1, rb.close).start()
    assert rb.read(4, timeout=None) is None and rb.closed
    assert rb.read_all().shape == (2,)
