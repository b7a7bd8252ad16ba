"""Reading series (forecast.data, forecast.timeaxis), scaling and window transforms
(export.runtime.forecaster), backtest scores and baselines (forecast.backtest, .baselines)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from export.runtime.forecaster import SeriesScaler, WindowTransform
from forecast.backtest import backtest_baseline, backtest_origins, scores, seasonal_scale
from forecast.baselines import drift, naive, seasonal_naive
from forecast.data import DataSpec, read_series
from forecast.timeaxis import parse_freq


def write(tmp_path, text: str, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_monthly_dates_gaps_and_missing_values_are_filled_and_counted(tmp_path):
    path = write(
        tmp_path,
        "month,sales,price\n2020-01,1,10\n2020-02,,11\n2020-03,3,12\n2020-05,5,14\n2020-06,6,NA\n",
    )
    (series,) = read_series(path, DataSpec(target="sales", covariates="price"))
    assert series.axis.freq.describe() == "monthly" and series.axis.freq.season() == 12
    assert series.gaps == 1  # 2020-04 was not in the file
    assert series.missing == 4  # sales: February and April; price: April and June
    np.testing.assert_allclose(series.values[:, 0], [1, 2, 3, 4, 5, 6])
    np.testing.assert_allclose(series.values[:, 1], [10, 11, 12, 13, 14, 14])
    assert series.axis.after(series.last, 8)[-2:] == ["2021-01", "2021-02"]


def test_numbers_days_and_gzip_and_several_series(tmp_path):
    (years,) = read_series(write(tmp_path, "year,n\n1700,5\n1701,11\n1703,16\n"), DataSpec())
    assert years.axis.freq.unit == "number" and len(years.values) == 4
    assert years.axis.after(years.last, 2) == ["1704", "1705"]
    text = (
        "id,day,v\na,2021-01-01,1\nb,2021-01-01,5\na,2021-01-02,2\nb,2021-01-02,6\na,2021-01-03,3\n"
    )
    path = tmp_path / "days.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    a, b = read_series(str(path), DataSpec(time_column="day", series_column="id"))
    assert (a.name, b.name) == ("a", "b")
    assert a.axis.freq.describe() == "daily" and a.axis.freq.season() == 7
    np.testing.assert_allclose(a.values[:, 0], [1, 2, 3])
    assert a.axis.after(a.last, 1) == ["2021-01-04"]


def test_month_end_dates_are_monthly(tmp_path):
    path = write(tmp_path, "t,v\n2021-01-31,1\n2021-02-28,2\n2021-03-31,3\n2021-04-30,4\n")
    (series,) = read_series(path, DataSpec())
    assert series.axis.freq.describe() == "monthly"
    assert series.axis.after(series.last, 2) == ["2021-05-31", "2021-06-30"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("t,v\n2020-01,1\nJanuary,2\n", "line 3: cannot read the time 'January' in column 't'"),
        ("t,v\n1,1\n2,x\n", "line 3: the value 'x' in column 'v' is not a number"),
        ("t,v\n1,1\n2,2\n3,3\n2,4\n", "line 5: times must increase"),
        ("t,v\n2020-01-01,1\n2020-01-02,2\n2020-01-02 12:00,3\n", "line 4: this time is not on"),
        ("t,v\n1,1\n2\n", "line 3: 1 fields, the header has 2"),
        ("t,v\n1,\n2,\n", "a value column holds no numbers"),
    ],
)
def test_bad_rows_name_the_file_and_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as error:
        read_series(path, DataSpec())
    assert str(error.value).startswith(path) and message in str(error.value)


def test_unknown_columns_and_frequencies_are_refused(tmp_path):
    path = write(tmp_path, "t,v\n1,1\n2,2\n")
    with pytest.raises(ValueError, match="no target column 'sales' \\(columns: t, v\\)"):
        read_series(path, DataSpec(target="sales"))
    with pytest.raises(ValueError, match="unknown unit 'fortnight'"):
        parse_freq("fortnight")
    assert parse_freq("15min").step == 900 and parse_freq("Q").step == 3


@pytest.mark.parametrize("kind", ["standard", "minmax", "none"])
def test_the_scaler_round_trips(kind):
    values = np.random.default_rng(0).normal(50, 7, size=(40, 2))
    scaler = SeriesScaler.fit(values, kind)
    np.testing.assert_allclose(scaler.inverse(scaler.transform(values)), values, rtol=1e-12)
    again = SeriesScaler.from_state(scaler.state())
    np.testing.assert_array_equal(again.transform(values), scaler.transform(values))
    if kind == "minmax":
        scaled = scaler.transform(values)
        assert scaled.min() == pytest.approx(0) and scaled.max() == pytest.approx(1)


@pytest.mark.parametrize("kind", ["none", "level", "seasonal_difference"])
def test_window_transforms_invert_their_targets(kind):
    rng = np.random.default_rng(1)
    history, future = rng.normal(size=(30, 2)), rng.normal(size=(9, 2))  # future > one season
    transform = WindowTransform(kind, period=4)
    targets = transform.targets(history, future)
    restored, _ = transform.invert(history, targets)
    np.testing.assert_allclose(restored, future, atol=1e-12)
    assert transform.inputs(history, 10).shape == (10, 2)


def test_scores_and_baselines():
    history = np.array([1.0, 2, 3, 4, 1, 2, 3, 4])
    np.testing.assert_array_equal(naive(history, 3, 4), [4, 4, 4])
    np.testing.assert_array_equal(seasonal_naive(history, 6, 4), [1, 2, 3, 4, 1, 2])
    np.testing.assert_allclose(drift(history, 2, 4), [4 + 3 / 7, 4 + 6 / 7])
    assert seasonal_scale(history, 4) == 1.0  # a constant seasonal difference: scale 1
    assert seasonal_scale(history, 1) == pytest.approx(9 / 7)
    result = scores(np.array([2.0, 4.0]), np.array([3.0, 4.0]), 2.0, np.ones(2), np.full(2, 3.5))
    assert result["mase"] == pytest.approx(0.25) and result["mae"] == pytest.approx(0.5)
    assert result["smape"] == pytest.approx(100 * (2 * 1 / 5) / 2)
    assert result["coverage"] == 0.5
    assert backtest_origins(100, 10, 0.2) == [80, 85, 90]


def test_seasonal_naive_is_perfect_on_a_repeating_pattern():
    class Flat:
        name = ""
        values = np.tile([3.0, 1.0, 4.0, 1.0, 5.0], 20)[:, None]

    means, _ = backtest_baseline(seasonal_naive, [Flat()], 5, 0.2, 5)
    assert means["mase"] == 0.0
