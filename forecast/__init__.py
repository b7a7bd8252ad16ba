"""Time-series forecasting: recurrent encoders with an autoregressive (or direct) decoder.

Entry points: ``python -m forecast.train`` (train, export, print the backtest beside the
baselines), ``python -m forecast.evaluate`` (rolling-origin backtest of a bundle, JSON) and
``python -m forecast.predict`` (a CSV of forecasts). Evaluation and prediction run on the
torch-free runtime (:class:`export.runtime.Forecaster`). Importing the package imports nothing
heavy.
"""
