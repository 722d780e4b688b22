"""Extension singletons, uninitialised; ``create_app`` binds them to an app."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sock import Sock
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
sock = Sock()
login_manager = LoginManager()
csrf = CSRFProtect()
# Nothing is limited by default; the login view declares its limit.
limiter = Limiter(get_remote_address)
