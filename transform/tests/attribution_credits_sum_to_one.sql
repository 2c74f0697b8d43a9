{#-
  Under each attribution model, the credits of each lead of lead_journeys add up to 1 in
  lead_attribution: no lead or model left out, no lead credited twice, none from elsewhere.
-#}
{%- set project = has_project_column() %}

with models as (

    {%- for model in attribution_models() %}
    select '{{ model }}' as attribution_model{{ ' union all' if not loop.last }}
    {%- endfor %}

),

expected as (

    select {{ with_project('lead_id', 'journeys') }}, models.attribution_model
    from {{ ref('lead_journeys') }} as journeys
    cross join models

),

credited as (

    select {{ with_project('lead_id, attribution_model') }}, sum(credit) as credits
    from {{ ref('lead_attribution') }}
    group by {{ with_project('lead_id, attribution_model') }}

)

select
    {%- if project %}
    coalesce(expected.project, credited.project) as project,
    {%- endif %}
    coalesce(expected.lead_id, credited.lead_id) as lead_id,
    coalesce(expected.attribution_model, credited.attribution_model) as attribution_model,
    credited.credits
from expected
full outer join credited
    on credited.lead_id = expected.lead_id
    and credited.attribution_model = expected.attribution_model
    {{ same_project('credited', 'expected') }}
where expected.lead_id is null
    or credited.credits is null
    or abs(credited.credits - 1) > 1e-9
